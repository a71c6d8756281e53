#include "server/page.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

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
                    "<td class=\"num\">1.5</td><td class=\"num\"><time datetime=\"2027-01-15T07:59:57.000Z\">3s ago"
                    "</time></td></tr>") != std::string::npos);
    CHECK(page.find("<tr><td class=\"name\">a&amp;b&quot;c&#39;d</td><td>counter</td>"
                    "<td class=\"num\">42</td><td class=\"num\"><time datetime=\"2027-01-15T07:57:00.000Z\">3m ago"
                    "</time></td></tr>") != std::string::npos);
    CHECK(page.find("<td class=\"num\">0.000001</td><td class=\"num\"></td>") != std::string::npos);
    CHECK(page.find("<img") == std::string::npos);
    CHECK(page.find(server::page_script) != std::string::npos);
    CHECK(page.find("</script>") == page.rfind("</script>"));  // the script holds no closing tag
    CHECK(page.find("http") == page.find("http://www.w3.org/2000/svg"));  // nothing fetched from elsewhere
    CHECK(page.ends_with("</html>\n"));
}
