#include "storage/detail/reclaim.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

namespace {

using storage::detail::Garbage;
using storage::detail::ReadGuard;
using storage::detail::Retired;

/// Garbage whose "free" counts into an int.
Garbage counted(int& frees)
{
    return {&frees, [](void* p) noexcept { ++*static_cast<int*>(p); }};
}

/// Waits (yielding) until `flag` is set; fails the test after ~10 s rather than hang.
void wait_for(const std::atomic<bool>& flag)
{
    for (int i = 0; i < 10'000'000 && !flag.load(); ++i)
        std::this_thread::yield();
    REQUIRE(flag.load());
}

}  // namespace

TEST_CASE("memory retired while no reader is inside a section is freed at once")
{
    int frees = 0;
    Retired retired;
    retired.reserve_one();
    retired.add(counted(frees));
    CHECK(frees == 1);
    CHECK(retired.empty());
    {
        ReadGuard own;  // the writer's own section does not count: it is not inside one when it polls
    }
    retired.reserve_one();
    retired.add(counted(frees));
    CHECK(frees == 2);
}

TEST_CASE("memory retired while another thread is inside a section waits until that section ends")
{
    int frees = 0;
    Retired retired;
    std::atomic<bool> inside{false}, may_leave{false}, left{false};
    std::thread reader{[&] {
        {
            ReadGuard guard;
            inside.store(true);
            wait_for(may_leave);
        }
        left.store(true);
    }};
    wait_for(inside);
    retired.reserve_one();
    retired.add(counted(frees));
    CHECK(frees == 0);
    retired.poll();
    CHECK(frees == 0);
    CHECK_FALSE(retired.empty());

    may_leave.store(true);
    wait_for(left);
    retired.poll();
    CHECK(frees == 1);
    CHECK(retired.empty());
    reader.join();
}

TEST_CASE("a reader's later sections do not hold back memory retired before them")
{
    // The reader leaves and enters again: its state has moved on, so the first section is over.
    int frees = 0;
    Retired retired;
    std::atomic<bool> inside{false}, next{false}, inside_again{false}, may_leave{false};
    std::thread reader{[&] {
        {
            ReadGuard guard;
            inside.store(true);
            wait_for(next);
        }
        ReadGuard again;
        inside_again.store(true);
        wait_for(may_leave);
    }};
    wait_for(inside);
    retired.reserve_one();
    retired.add(counted(frees));
    CHECK(frees == 0);
    next.store(true);
    wait_for(inside_again);
    retired.poll();
    CHECK(frees == 1);

    SUBCASE("what is retired during the second section waits for it, and the destructor frees it") {
        {
            Retired later;
            later.reserve_one();
            later.add(counted(frees));
            CHECK(frees == 1);
        }
        CHECK(frees == 2);
    }
    may_leave.store(true);
    reader.join();
}
