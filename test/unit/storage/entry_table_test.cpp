#include "storage/detail/entry_table.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using Table = storage::detail::EntryTable<std::int64_t>;

/// Checks that `t` holds exactly `model` (name -> value), by lookups and by iteration.
void check_same(const Table& t, const std::map<std::string, std::pair<std::size_t, std::int64_t>>& model)
{
    REQUIRE(t.size() == model.size());
    for (const auto& [name, entry] : model) {
        const auto* e = t.find(name, entry.first);
        REQUIRE(e != nullptr);
        CHECK(e->name() == name);
        CHECK(e->value == entry.second);
    }
    std::size_t seen = 0;
    t.for_each([&](const storage::detail::Entry<std::int64_t>& e) {
        const auto it = model.find(std::string{e.name()});
        REQUIRE(it != model.end());
        CHECK(e.value == it->second.second);
        ++seen;
    });
    CHECK(seen == model.size());
}

}  // namespace

TEST_CASE("the shard table finds, inserts and erases like a map, also when hashes collide")
{
    // Few distinct hashes make long probe runs that wrap around the end of the slot array, so
    // backward-shift deletion must move the right slots; full hashes that differ only in their
    // low bits (a shard's names all share them) must still spread.
    for (const std::size_t distinct_hashes : {std::size_t{3}, std::size_t{64}, std::size_t{1} << 40}) {
        CAPTURE(distinct_hashes);
        std::mt19937_64 random{distinct_hashes};
        Table table;
        std::map<std::string, std::pair<std::size_t, std::int64_t>> model;
        const auto hash_of = [&](std::size_t i) { return (i % distinct_hashes) << 6 | 5; };
        for (int step = 0; step < 4000; ++step) {
            const std::size_t i = random() % 300;
            // Short names, and names of 9 to 16 bytes that differ only in their middle bytes.
            const std::string name = i % 2 == 0 ? "m" + std::to_string(i) : "n" + std::to_string(i) + "_metric_x";
            const std::size_t hash = hash_of(i);
            const bool present = model.count(name) != 0;
            CHECK((table.find(name, hash) != nullptr) == present);
            if (random() % 3 == 0) {
                table.erase(name, hash);
                model.erase(name);
            } else if (present) {
                table.find(name, hash)->value += 1;
                model[name].second += 1;
            } else {
                CHECK(table.insert(name, hash, step)->name() == name);
                model[name] = {hash, step};
            }
            if (step % 500 == 0)
                check_same(table, model);
        }
        check_same(table, model);
        table.clear();
        CHECK(table.size() == 0);
        CHECK(table.find("m1", hash_of(1)) == nullptr);
        table.insert("again", 7, 1);  // usable after clear
        CHECK(table.find("again", 7)->value == 1);
    }
}

TEST_CASE("an empty shard table answers lookups and erases without slots")
{
    Table table;
    CHECK(table.find("x", 1) == nullptr);
    table.erase("x", 1);
    CHECK(table.size() == 0);
}

TEST_CASE("the shard table tells apart names of every size that differ in one byte")
{
    // All with one hash, so that every lookup compares names: the inline compares (4 to 7 and 8
    // to 16 bytes, overlapping words) must look at every byte, the first and last included.
    Table table;
    std::vector<std::string> names;
    for (std::size_t n = 1; n <= 20; ++n)
        for (std::size_t at = 0; at < n; ++at) {
            std::string name(n, 'n');
            name[at] = 'x';
            names.push_back(name);
        }
    for (std::size_t i = 0; i < names.size(); ++i)
        table.insert(names[i], 7, static_cast<std::int64_t>(i));
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto* e = table.find(names[i], 7);
        REQUIRE(e != nullptr);
        CHECK(e->value == static_cast<std::int64_t>(i));
    }
    for (std::size_t n = 1; n <= 20; ++n)
        CHECK(table.find(std::string(n, 'n'), 7) == nullptr);
}
