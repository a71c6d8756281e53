#include "server/page.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

std::string age(std::int64_t updated, std::int64_t now)
{
    fmt::memory_buffer b;
    server::write_age(b, updated, now);
    return {b.data(), b.size()};
}

}  // namespace

TEST_CASE("ages round to the unit that reads best")
{
    const std::int64_t now = 1'800'000'000'000;
    CHECK(age(0, now) == "-");
    CHECK(age(now, now) == "0s");
    CHECK(age(now - 1'499, now) == "1s");
    CHECK(age(now + 5'000, now) == "0s");  // a clock step backwards is not a negative age
    CHECK(age(now - 119'000, now) == "119s");
    CHECK(age(now - 120'000, now) == "2m");
    CHECK(age(now - 7'199'000, now) == "120m");
    CHECK(age(now - 7'200'000, now) == "2h");
    CHECK(age(now - 3 * 86'400'000, now) == "3d");
}

TEST_CASE("the page lists every metric as text, hostile names escaped, with the script inline")
{
    const std::int64_t now = 1'800'000'000'000;
    std::vector<core::OwnedMetric> metrics{
        {"<img src=x onerror=alert(1)>", core::Kind::gauge, 1.5, 0, now - 3'000, 0},
        {"a&b\"c'd", core::Kind::counter, 0, 42, now - 180'000, 0},
        {"old", core::Kind::gauge, 0.000001, 0, 0, 0},
    };
    fmt::memory_buffer b;
    server::write_page(b, metrics, now);
    const std::string page{b.data(), b.size()};
    CHECK(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    CHECK(page.find("<span id=\"status\">3 metrics</span>") != std::string::npos);
    CHECK(page.find("<tr><td class=\"name\">&lt;img src=x onerror=alert(1)&gt;</td><td>gauge</td>"
                    "<td class=\"num\">1.5</td><td class=\"num\">3s</td></tr>") != std::string::npos);
    CHECK(page.find("<tr><td class=\"name\">a&amp;b&quot;c&#39;d</td><td>counter</td>"
                    "<td class=\"num\">42</td><td class=\"num\">3m</td></tr>") != std::string::npos);
    CHECK(page.find("<td class=\"num\">0.000001</td><td class=\"num\">-</td>") != std::string::npos);
    CHECK(page.find("<img") == std::string::npos);
    CHECK(page.find(server::page_script) != std::string::npos);
    CHECK(page.find("</script>") == page.rfind("</script>"));  // the script holds no closing tag
    CHECK(page.find("http") == page.find("http://www.w3.org/2000/svg"));  // nothing fetched from elsewhere
    CHECK(page.ends_with("</html>\n"));
}
