#!/bin/sh
# Build pjproject 2.15.1 from source and install its pjsua2 Python module into
# a venv: ALSA, WebRTC AEC3, Opus, SRTP, OpenSSL 3 from Debian, and SIP
# packets up to 16000 bytes. Runs natively inside the target root, whose
# Debian packages it needs are listed in build-deps beside it; or, with
# --host and --sysroot, on a build host with Debian's cross toolchain
# (crossbuild-essential-arm64, swig, pkg-config) against the target root's
# -dev packages (build-deps-target). See README.md here.
#
# usage: build.sh --venv VENV_DIR [--src PATH] [--jobs N] [--workdir DIR]
#                 [--host TRIPLET --sysroot ROOT]
#
# Cross-compiling, VENV_DIR is the venv's path as the target sees it (inside
# ROOT); the module is checked by the venv's python in `chroot ROOT` (qemu-user
# through binfmt for a foreign architecture), so that takes root.
#
# The source is the release tarball from GitHub, or PATH (also taken from
# PJPROJECT_SRC) where the network is closed: a git repository holding the
# release commit, a tarball, or an unpacked tree. Whatever it is, the tree
# that gets built must hash to the release's git tree id, so a changed
# download or a patched copy cannot slip in.
set -eu

VERSION=2.15.1
TAG_OBJECT=cceb8e21157b6dc965ce7940487a4cb8d62dae04 # `git rev-parse 2.15.1` (annotated tag)
COMMIT=7de6e686fee1642f5443a3f39f0e5ad5e478a117     # `git rev-parse 2.15.1^{commit}`
TREE=a0e14d00437610c19e66044642064b109926e61f       # `git rev-parse 2.15.1^{tree}`
URL="https://github.com/pjsip/pjproject/archive/refs/tags/$VERSION.tar.gz"

venv="" src="${PJPROJECT_SRC:-}" jobs="" workdir="" host="" sysroot=""
usage() {
	echo "usage: $0 --venv VENV_DIR [--src PATH] [--jobs N] [--workdir DIR] [--host TRIPLET --sysroot ROOT]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--venv) venv="${2:?}"; shift 2 ;;
	--src) src="${2:?}"; shift 2 ;;
	--jobs) jobs="${2:?}"; shift 2 ;;
	--workdir) workdir="${2:?}"; shift 2 ;;
	--host) host="${2:?}"; shift 2 ;;
	--sysroot) sysroot="$(cd "${2:?}" && pwd)" || usage; shift 2 ;;
	*) usage ;;
	esac
done
[ -n "$venv" ] || usage
if [ -n "$host$sysroot" ]; then
	[ -n "$host" ] && [ -n "$sysroot" ] || { echo "build.sh: --host and --sysroot go together" >&2; exit 2; }
	command -v "$host-g++" >/dev/null || { echo "build.sh: no $host-g++ (apt-get install crossbuild-essential-arm64)" >&2; exit 2; }
	command -v swig >/dev/null || { echo "build.sh: no swig on the build host" >&2; exit 2; }
fi
[ -x "$sysroot$venv/bin/python" ] || { echo "build.sh: $sysroot$venv/bin/python is not a venv's python" >&2; exit 2; }
# target_python ARGS: the venv's python, in the target root when cross-compiling.
target_python() {
	if [ -n "$sysroot" ]; then chroot "$sysroot" "$venv/bin/python" "$@"; else "$venv/bin/python" "$@"; fi
}
jobs="${jobs:-$(nproc)}"
here="$(cd "$(dirname "$0")" && pwd)"

started=$(date +%s)
phase() { echo "== pjproject [$(($(date +%s) - started))s] $*"; }
die() { echo "build.sh: $*" >&2; exit 1; }

if [ -z "$workdir" ]; then
	workdir="$(mktemp -d "${TMPDIR:-/tmp}/pjproject.XXXXXX")"
	trap 'rm -rf "$workdir"' EXIT
fi
mkdir -p "$workdir"
tree="$workdir/pjproject-$VERSION"
[ ! -e "$tree" ] || die "$tree exists: give an empty --workdir"

# unpack_tarball FILE: the archive's single top folder (GitHub's) or its root becomes $tree.
unpack_tarball() {
	mkdir "$workdir/unpack"
	tar -xf "$1" -C "$workdir/unpack" || die "cannot unpack $1"
	set -- "$workdir/unpack"/*
	if [ $# = 1 ] && [ -d "$1" ]; then mv "$1" "$tree"; else mv "$workdir/unpack" "$tree"; fi
	rm -rf "$workdir/unpack"
}

phase "source: ${src:-$URL}"
if [ -z "$src" ]; then
	curl -fsSL --retry 3 -o "$workdir/pjproject.tar.gz" "$URL" || die "download of $URL failed (PJPROJECT_SRC=path takes a local copy)"
	unpack_tarball "$workdir/pjproject.tar.gz"
elif [ -d "$src" ] && git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	# A repository (bare or not): take the release commit itself, not a work tree.
	git -C "$src" cat-file -e "$COMMIT^{commit}" 2>/dev/null || die "$src does not hold commit $COMMIT ($VERSION)"
	if tag="$(git -C "$src" rev-parse -q --verify "refs/tags/$VERSION" 2>/dev/null)"; then
		[ "$tag" = "$TAG_OBJECT" ] || die "$src: tag $VERSION is $tag, not $TAG_OBJECT"
	fi
	mkdir "$tree"
	git -C "$src" archive "$COMMIT" | tar -x -C "$tree"
elif [ -d "$src" ]; then
	mkdir "$tree"
	tar -C "$src" --exclude=./.git -cf - . | tar -x -C "$tree"
elif [ -f "$src" ]; then
	unpack_tarball "$src"
else
	die "--src $src is neither a git repository, a folder nor a tarball"
fi

# The pin: the unpacked files must make the release's git tree, byte for byte.
phase "checking the source against git tree $TREE (release commit $COMMIT)"
git init -q --bare "$workdir/hash.git"
GIT_DIR="$workdir/hash.git" GIT_INDEX_FILE="$workdir/hash.index" \
	git -c core.autocrlf=false -c core.filemode=true -c core.symlinks=true \
	--work-tree="$tree" add -A -f .
got="$(GIT_DIR="$workdir/hash.git" GIT_INDEX_FILE="$workdir/hash.index" git write-tree)"
rm -rf "$workdir/hash.git" "$workdir/hash.index"
[ "$got" = "$TREE" ] || die "the source's git tree is $got, not $VERSION's $TREE: refusing to build it"

cd "$tree"
# Everything else keeps pjproject's defaults, PJ_IOQUEUE_MAX_HANDLES and
# PJ_IOQUEUE_KEY_FREE_DELAY among them (phone/sip/admission.py counts on them).
cp "$here/config_site.h" pjlib/include/pj/config_site.h

phase "configure${host:+ (cross: $host, sysroot $sysroot)}"
# -fPIC: the static libraries end up inside the Python extension module.
# OpenSSL is found by configure (a bare --with-ssl would add -Iyes/include).
# Cross-compiling, the compilers take the target root as their sysroot (its
# headers and libraries; Debian's cross gcc searches its multiarch folders),
# and configure leaves OpenSSL and Opus out unless given a prefix.
set --
if [ -n "$host" ]; then
	export CC="$host-gcc --sysroot=$sysroot" CXX="$host-g++ --sysroot=$sysroot"
	export PKG_CONFIG_SYSROOT_DIR="$sysroot" PKG_CONFIG_LIBDIR="$sysroot/usr/lib/$host/pkgconfig:$sysroot/usr/share/pkgconfig"
	set -- --host="$host" --with-ssl="$sysroot/usr" --with-opus="$sysroot/usr"
fi
CFLAGS="-O2 -fPIC" CXXFLAGS="-O2 -fPIC" ./configure "$@" \
	--enable-libwebrtc-aec3 \
	--disable-video --disable-v4l2 --disable-libyuv --disable-ffmpeg --disable-sdl \
	--disable-openh264 --disable-vpx \
	>"$workdir/configure.log" 2>&1 || { tail -30 "$workdir/configure.log" >&2; die "configure failed"; }

# What configure found must be what we asked for: fail here, not on the phone.
found() { grep -q "$1" "$workdir/configure.log" || die "configure did not enable $2 (see $workdir/configure.log)"; }
found "^Checking sound device backend... alsa" "ALSA sound (libasound2-dev)"
found "^OPUS library found" "Opus (libopus-dev)"
found "^OpenSSL library found" "OpenSSL (libssl-dev)"
found "^OpenSSL has AES GCM support, SRTP will use OpenSSL" "SRTP with OpenSSL"
found "^Checking if libsrtp is disabled...no" "SRTP"
found "WebRtc AEC3 can be compiled with C++17... yes" "WebRTC AEC3 (a C++17 compiler)"

phase "compile ($jobs jobs)"
make -j"$jobs" lib >"$workdir/make.log" 2>&1 || { tail -40 "$workdir/make.log" >&2; die "make failed"; }

phase "SWIG Python bindings"
swig_dir=pjsip-apps/src/swig/python
# The wrapper is one huge C++ file: without debug info it builds much faster
# (under qemu above all) and the module is a fraction of the size.
if [ -z "$host" ]; then
	CFLAGS="-O2 -g0" make -C "$swig_dir" PYTHON_EXE="$venv/bin/python" >"$workdir/swig.log" 2>&1 ||
		{ tail -40 "$workdir/swig.log" >&2; die "the SWIG build failed"; }
else
	# setup.py compiles for the python that runs it, so the cross build does
	# its two steps itself: the wrapper with the target python's headers and
	# pjproject's flags (helper.mak, as setup.py reads them), then the module
	# named with the target's extension suffix. (Each step is chained: errexit
	# does not apply inside a list tested with ||.)
	(
		helper() { make --no-print-directory -f helper.mak "$1" | tr '\n' ' '; }
		cd "$swig_dir" && make pjsua2_wrap.cpp && mkdir -p build/lib.cross &&
			paths="$(target_python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"), sysconfig.get_paths()["include"])')" &&
			set -- $paths && [ $# = 2 ] &&
			# shellcheck disable=SC2046 # flag lists
			$CXX -O2 -g0 -fPIC -fwrapv -I"$sysroot$2" $(helper cflags) -c pjsua2_wrap.cpp -o build/pjsua2_wrap.o &&
			# shellcheck disable=SC2046 # flag lists
			$CXX -shared -o "build/lib.cross/_pjsua2$1" build/pjsua2_wrap.o $(helper ldflags) \
				$(helper libs | sed 's/[^ ][^ ]*/-l&/g') &&
			cp pjsua2.py build/lib.cross/
	) >"$workdir/swig.log" 2>&1 || { tail -40 "$workdir/swig.log" >&2; die "the SWIG build failed"; }
fi
# Copied, not pip-installed: pip would need the wheel package, which a fresh
# venv lacks and a closed network cannot fetch. Debug info is stripped; the
# dynamic symbols phone/pjproject.py binds stay.
site="$sysroot$(target_python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"
set -- "$swig_dir"/build/lib.*/_pjsua2*.so
[ $# = 1 ] && [ -f "$1" ] || die "the SWIG build made no single _pjsua2 module: $*"
"${host:+$host-}strip" --strip-debug "$1"
cp "$1" "$(dirname "$1")/pjsua2.py" "$site/" || die "installing pjsua2 into $sysroot$venv failed"

phase "checking the module"
target_python - "$VERSION" <<'EOF'
import sys

import pjsua2

ep = pjsua2.Endpoint()
ep.libCreate()
version = ep.libVersion().full
ep.libDestroy()
if version != sys.argv[1]:
    sys.exit(f"pjsua2 reports {version}, not {sys.argv[1]}")
print(f"pjsua2 {version}: {pjsua2._pjsua2.__file__}")
EOF
phase "done"
