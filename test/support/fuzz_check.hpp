#pragma once

// An invariant of a fuzz target: a violation prints where and aborts, so that libFuzzer and the
// replay runner (test/fuzz/replay_main.cpp) both report it as a crash with the input.

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(c)                                                                           \
    do {                                                                                        \
        if (!(c)) {                                                                             \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #c);      \
            std::abort();                                                                       \
        }                                                                                       \
    } while (false)
