#!/usr/bin/env bash
# The layering rule of scheduler/README.md, checked over every quoted #include:
#
#   layer         may include
#   basic/        basic/
#   store/        basic/ store/
#   core/         basic/ store/ core/ include/
#   control/      basic/ store/ core/ control/ include/
#   schedctl/     basic/ store/ core/ control/ schedctl/ include/
#   schedulerd.c  basic/ store/ core/ control/ include/
#   jobs/         basic/ include/ and the job's own jobs/ folders
#
# Usage: check-layers.sh [TOP]  (TOP defaults to $top_srcdir, then to this script's checkout).
# Prints each violation as FILE:LINE: and exits 1 when there is one.
set -euo pipefail

top=${1:-${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}
cd "$top"

allowed_for() {
        case $1 in
        scheduler/basic/*) echo "basic" ;;
        scheduler/store/*) echo "basic store" ;;
        scheduler/core/*) echo "basic store core include" ;;
        scheduler/control/*) echo "basic store core control include" ;;
        scheduler/schedctl/*) echo "basic store core control schedctl include" ;;
        scheduler/schedulerd.c) echo "basic store core control include" ;;
        jobs/*) echo "basic include jobs" ;;
        *) echo "" ;;
        esac
}

# layer_of FILE INCLUDE: the layer an include line names, seen from FILE
layer_of() {
        local file=$1 inc=$2 dir
        dir=$(dirname "$file")
        # a name beside the including file is in that file's own folder
        if [ -e "$dir/$inc" ]; then
                inc="$dir/$inc"
        elif [ -e "scheduler/$inc" ]; then
                inc="scheduler/$inc"
        elif [ -e "include/$inc" ]; then
                inc="include/$inc"
        elif [ -e "jobs/$inc" ]; then
                inc="jobs/$inc"
        else
                echo "unknown"
                return
        fi
        inc=$(realpath -m --relative-to=. "$inc")
        case $inc in
        scheduler/basic/*) echo basic ;;
        scheduler/store/*) echo store ;;
        scheduler/core/*) echo core ;;
        scheduler/control/*) echo control ;;
        scheduler/schedctl/*) echo schedctl ;;
        include/*) echo include ;;
        jobs/*) echo jobs ;;
        *) echo "other:$inc" ;;
        esac
}

bad=0
checked=0
while IFS= read -r file; do
        allowed=$(allowed_for "$file")
        [ -n "$allowed" ] || continue
        while IFS=: read -r line inc; do
                [ -n "$line" ] || continue
                # the build's own config.h is force-included, never named; azi-3's config.h is its own
                layer=$(layer_of "$file" "$inc")
                checked=$((checked + 1))
                case " $allowed " in
                *" $layer "*) ;;
                *)
                        echo "$file:$line: includes \"$inc\" ($layer), but ${file%/*}/ may include only: $allowed (scheduler/README.md)"
                        bad=1
                        ;;
                esac
        done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$file" | sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done < <(find scheduler jobs -name '*.[ch]' | sort)

if [ "$checked" -eq 0 ]; then
        echo "check-layers: no #include lines found under $top/scheduler and $top/jobs" >&2
        exit 1
fi
[ "$bad" -eq 0 ] && echo "check-layers: $checked includes follow the layering rule"
exit "$bad"
