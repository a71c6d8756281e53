#include "server/exchange.hpp"

namespace server {

// Not inline: callers may be coroutines that resume on another thread, and an inlined
// thread_local address could be reused from before a suspension.
[[gnu::noinline]] codec::Gzip& Scratch::gzip()
{
    thread_local codec::Gzip codec;
    return codec;
}

void Scratch::release() noexcept
{
    if (decoded_body.capacity() > retained_bytes)
        decoded_body = {};
    for (std::string* s : {&path_segment, &opened_body, &audit_ids})
        if (s->capacity() > retained_bytes)
            std::string{}.swap(*s);
}

}  // namespace server
