#include "storage/detail/entry_table.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
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
        CHECK(e->load() == entry.second);
    }
    std::size_t seen = 0;
    t.for_each([&](const storage::detail::Entry<std::int64_t>& e) {
        const auto it = model.find(std::string{e.name()});
        REQUIRE(it != model.end());
        CHECK(e.load() == it->second.second);
        ++seen;
    });
    CHECK(seen == model.size());
}

}  // namespace

TEST_CASE("the shard table finds, inserts and clears like a map, also when hashes collide")
{
    // Few distinct hashes make long probe runs that wrap around the end of the slot array; full
    // hashes that differ only in their low bits (a shard's names all share them) must still spread.
    for (const std::size_t distinct_hashes : {std::size_t{3}, std::size_t{64}, std::size_t{1} << 40}) {
        CAPTURE(distinct_hashes);
        std::mt19937_64 random{distinct_hashes};
        Table table;
        std::map<std::string, std::pair<std::size_t, std::int64_t>> model;
        const auto hash_of = [&](std::size_t i) { return (i % distinct_hashes) << 6 | 5; };
        for (int step = 0; step < 4000; ++step) {
            const std::size_t i = random() % 600;
            // Short names, and names of 9 to 16 bytes that differ only in their middle bytes.
            const std::string name = i % 2 == 0 ? "m" + std::to_string(i) : "n" + std::to_string(i) + "_metric_x";
            const std::size_t hash = hash_of(i);
            const bool present = model.count(name) != 0;
            CHECK((table.find(name, hash) != nullptr) == present);
            if (present) {
                auto* e = table.find(name, hash);
                e->store(e->load() + 1);
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
        CHECK(table.find("m2", hash_of(2)) == nullptr);
        table.insert("again", 7, 1);  // usable after clear
        CHECK(table.find("again", 7)->load() == 1);
    }
}

TEST_CASE("an empty shard table answers lookups without slots")
{
    Table table;
    CHECK(table.find("x", 1) == nullptr);
    CHECK(table.size() == 0);
    table.clear();
    CHECK(table.find("x", 1) == nullptr);
}

TEST_CASE("entries reserved for and placed by a batch are found; reserve makes room once")
{
    Table table;
    table.reserve(100);
    for (std::int64_t i = 0; i < 100; ++i)
        table.place(storage::detail::Entry<std::int64_t>::make("p" + std::to_string(i), i), static_cast<std::size_t>(i) * 977);
    CHECK(table.size() == 100);
    for (std::int64_t i = 0; i < 100; ++i) {
        const auto* e = table.find("p" + std::to_string(i), static_cast<std::size_t>(i) * 977);
        REQUIRE(e != nullptr);
        CHECK(e->load() == i);
    }
}

TEST_CASE("lock-free readers find every name inserted before they looked, while the table grows and is cleared")
{
    // One writer inserts names 0..N-1 in order and publishes how many it has inserted; readers,
    // each lookup in a read section, must find every name below what they saw published, with
    // its value. Grown arrays and cleared entries are retired under them (ASan would report a
    // reader on freed memory); each round but the last ends with a clear while they read.
    constexpr int names = 20000;
    constexpr int rounds = 3;
    Table table;
    std::vector<std::string> all;
    for (int i = 0; i < names; ++i)
        all.push_back("r" + std::to_string(i));
    const auto hash_of = [](int i) { return static_cast<std::size_t>(i) * 0x9E3779B97F4A7C15ULL; };
    std::atomic<int> published{0};
    std::atomic<int> round{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r)
        readers.emplace_back([&, r] {
            for (int seen_round = 0; seen_round < rounds;) {
                const int current = round.load(std::memory_order_acquire);
                const int upto = published.load(std::memory_order_acquire);
                const int i = upto == 0 ? 0 : (r * 7919 + upto * 31) % upto;
                if (upto > 0 && current == round.load(std::memory_order_acquire)) {
                    storage::detail::ReadGuard guard;
                    const auto* e = table.find(all[static_cast<std::size_t>(i)], hash_of(i));
                    // Cleared meanwhile (the round moved on): a miss is right then.
                    if ((e == nullptr || e->load() != i) && current == round.load(std::memory_order_acquire))
                        failed.store(true);
                }
                seen_round = current;
            }
        });
    for (int k = 0; k < rounds; ++k) {
        for (int i = 0; i < names; ++i) {
            table.insert(all[static_cast<std::size_t>(i)], hash_of(i), i);
            published.store(i + 1, std::memory_order_release);
        }
        published.store(0, std::memory_order_release);
        round.store(k + 1, std::memory_order_release);
        table.clear();
    }
    for (auto& t : readers)
        t.join();
    CHECK_FALSE(failed.load());
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
        CHECK(e->load() == static_cast<std::int64_t>(i));
    }
    for (std::size_t n = 1; n <= 20; ++n)
        CHECK(table.find(std::string(n, 'n'), 7) == nullptr);
}

TEST_CASE("removed names leave tombstones that probes pass, inserts reuse and growth drops")
{
    // Few distinct hashes: long runs, so a removal in the middle of a run must not hide the
    // names after it.
    for (const std::size_t distinct_hashes : {std::size_t{3}, std::size_t{1} << 40}) {
        CAPTURE(distinct_hashes);
        std::mt19937_64 random{distinct_hashes + 1};
        Table table;
        std::map<std::string, std::pair<std::size_t, std::int64_t>> model;
        const auto hash_of = [&](std::size_t i) { return (i % distinct_hashes) << 6 | 5; };
        for (int step = 0; step < 6000; ++step) {
            const std::size_t i = random() % 300;
            const std::string name = "k" + std::to_string(i);
            const std::size_t hash = hash_of(i);
            auto* e = table.find(name, hash);
            REQUIRE((e != nullptr) == (model.count(name) != 0));
            if (e != nullptr && random() % 2 == 0) {
                table.prepare_remove();
                table.remove(e, hash);
                model.erase(name);
            } else if (e == nullptr) {
                table.insert(name, hash, step);
                model[name] = {hash, step};
            }
            // Live names and tombstones together stay within the load factor.
            CHECK((table.size() + table.tombstones()) * 4 <= table.capacity() * 3);
            if (step % 1000 == 0)
                check_same(table, model);
        }
        check_same(table, model);
    }
}

TEST_CASE("an insert reuses the tombstone in its run, and a rehash keeps the size when most slots are tombstones")
{
    Table table;
    for (std::int64_t i = 0; i < 6; ++i)
        table.insert("t" + std::to_string(i), 1, i);  // one run
    auto* e = table.find("t2", 1);
    table.prepare_remove();
    table.remove(e, 1);
    CHECK(table.tombstones() == 1);
    CHECK(table.find("t2", 1) == nullptr);
    CHECK(table.find("t5", 1)->load() == 5);  // behind the tombstone
    table.insert("t9", 1, 9);
    CHECK(table.size() == 6);
    const std::size_t capacity = table.capacity();

    for (std::int64_t i = 0; i < 6; ++i)
        if (auto* x = table.find("t" + std::to_string(i), 1)) {
            table.prepare_remove();
            table.remove(x, 1);
        }
    CHECK(table.size() == 1);
    // Insert and remove fresh names until the tombstones force a rehash: it must not grow.
    for (int i = 0; i < 100; ++i) {
        const std::string name = "u" + std::to_string(i);
        const std::size_t hash = static_cast<std::size_t>(i) * 0x9E3779B97F4A7C15ULL;
        auto* x = table.insert(name, hash, i);
        table.prepare_remove();
        table.remove(x, hash);
    }
    CHECK(table.capacity() == capacity);
    CHECK(table.find("t9", 1)->load() == 9);
}

TEST_CASE("an entry keeps its value, time and seq together")
{
    auto* e = storage::detail::Entry<double>::make("e", 1.5, 7, 1234);
    CHECK(e->load() == 1.5);
    CHECK(e->seq() == 7);
    CHECK(e->updated_at() == 1234);
    e->set(2.5, 8, 2000);
    CHECK(e->load() == 2.5);
    CHECK(e->seq() == 8);
    CHECK(e->updated_at() == 2000);
    storage::detail::Entry<double>::destroy(e);
}

TEST_CASE("a table grows by doubling when three quarters of its slots hold names")
{
    Table table;
    for (std::int64_t i = 0; i < 6; ++i)
        table.insert("d" + std::to_string(i), static_cast<std::size_t>(i) * 0x9E3779B97F4A7C15ULL, i);
    CHECK(table.capacity() == 8);
    table.insert("d6", 6 * 0x9E3779B97F4A7C15ULL, 6);
    CHECK(table.capacity() == 16);
    for (std::int64_t i = 7; i < 12; ++i)
        table.insert("d" + std::to_string(i), static_cast<std::size_t>(i) * 0x9E3779B97F4A7C15ULL, i);
    CHECK(table.capacity() == 16);  // 12 of 16
    table.insert("d12", 12 * 0x9E3779B97F4A7C15ULL, 12);
    CHECK(table.capacity() == 32);
}
