#include "core/file.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace core::file {

int Fd::close() noexcept { return ::close(std::exchange(fd_, -1)); }

void Fd::reset() noexcept
{
    if (fd_ >= 0)
        ::close(std::exchange(fd_, -1));
}

namespace {

std::string_view kind_of(mode_t mode) noexcept
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    return "a special file";
}

Opened failure(int err)
{
    Opened o;
    o.missing = err == ENOENT;
    // O_NOFOLLOW's ELOOP names the cause poorly ("too many levels of symbolic links").
    o.error = err == ELOOP ? "a symbolic link, which is not followed" : std::strerror(err);
    return o;
}

/// Checks that a descriptor opened with O_NONBLOCK is a regular file, then makes it blocking.
Opened regular_only(Fd fd)
{
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return failure(errno);
    if (!S_ISREG(st.st_mode)) {
        Opened o;
        o.error = std::string{kind_of(st.st_mode)} + ", not a regular file";
        return o;
    }
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0)
        return failure(errno);
    Opened o;
    o.fd = std::move(fd);
    return o;
}

}  // namespace

Opened open_regular_for_read(const std::string& path)
{
    Fd fd{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)};
    if (!fd.ok())
        return failure(errno);
    return regular_only(std::move(fd));
}

Opened open_regular_for_append(const std::string& path, mode_t mode)
{
    Fd fd{::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, mode)};
    if (!fd.ok())
        return failure(errno);
    return regular_only(std::move(fd));
}

TempFile create_temp_beside(const std::string& path)
{
    // mkostemp creates with O_CREAT|O_EXCL, which never follows a symbolic link at the name,
    // and draws the six characters at random, so the name cannot be planted in advance.
    std::string name = path + ".tmp.XXXXXX";
    std::vector<char> buf(name.begin(), name.end());
    buf.push_back('\0');
    TempFile t;
    t.file.fd = Fd{::mkostemp(buf.data(), O_CLOEXEC)};
    if (!t.file.fd.ok()) {
        t.file = failure(errno);
        return t;
    }
    t.path.assign(buf.data(), name.size());
    return t;
}

bool write_all(int fd, std::string_view data) noexcept
{
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool sync_directory(const std::string& dir) noexcept
{
    Fd fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    return fd.ok() && ::fsync(fd.get()) == 0;
}

std::string directory_of(const std::string& path)
{
    std::string dir = std::filesystem::path(path).parent_path().string();
    return dir.empty() ? "." : dir;
}

}  // namespace core::file
