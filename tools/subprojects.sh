#!/usr/bin/env bash
# Puts the source archives of subprojects/*.wrap into subprojects/packagecache/ from local clones
# of their upstream repositories, without network: `git archive` of the wrapped release tag,
# gzipped as GitHub does (`gzip -n`), is byte for byte the archive whose source_hash the wrap
# names. Meson then checks that hash, unpacks the archive and lays WrapDB's packagefiles over it,
# exactly as after a download (meson setup --force-fallback-for=fmt,simdjson).
# Usage: tools/subprojects.sh NAME=CLONE...   e.g. tools/subprojects.sh fmt=~/src/fmt simdjson=~/src/simdjson
# A clone may be bare. Only wraps whose source_url is a GitHub tag archive can be made this way
# (asio's comes from SourceForge).
set -euo pipefail
cd "$(dirname "$0")/.."

wrap_value() {  # wrap key
    sed -nE "s/^$2 *= *(.*[^ ])[[:space:]]*$/\1/p" "subprojects/$1.wrap"
}

if (($# == 0)); then
    sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
mkdir -p subprojects/packagecache
status=0
for spec in "$@"; do
    name=${spec%%=*} clone=${spec#*=}
    if [[ $name == "$spec" || ! -f subprojects/$name.wrap ]]; then
        echo "subprojects.sh: '$spec' is not NAME=CLONE for a subprojects/NAME.wrap" >&2
        status=2
        continue
    fi
    url=$(wrap_value "$name" source_url)
    directory=$(wrap_value "$name" directory)
    file=$(wrap_value "$name" source_filename)
    hash=$(wrap_value "$name" source_hash)
    # https://github.com/OWNER/REPO/archive/[refs/tags/]TAG.tar.gz
    tag=$(sed -nE 's|^https://github\.com/[^/]+/[^/]+/archive/(refs/tags/)?(.+)\.tar\.gz$|\2|p' <<<"$url")
    if [[ -z $tag ]]; then
        echo "subprojects.sh: $name: $url is not a GitHub tag archive" >&2
        status=1
        continue
    fi
    out=subprojects/packagecache/$file
    tmp=$(mktemp "$out.XXXXXX")
    if ! git -C "$clone" archive --format=tar --prefix="$directory/" "$tag" | gzip -cn >"$tmp"; then
        rm -f "$tmp"
        echo "subprojects.sh: $name: no tag $tag in $clone" >&2
        status=1
        continue
    fi
    actual=$(sha256sum "$tmp" | cut -d' ' -f1)
    if [[ $actual != "$hash" ]]; then
        rm -f "$tmp"
        echo "subprojects.sh: $name: the archive of $tag has sha256 $actual, the wrap says $hash" >&2
        status=1
        continue
    fi
    chmod 644 "$tmp"
    mv "$tmp" "$out"
    echo "$out: $tag, sha256 $hash (as subprojects/$name.wrap says)"
done
exit "$status"
