#!/usr/bin/env bash
# The SD image recipe: Debian bookworm from packages (mmdebstrap), simplephone
# from this repository's HEAD (git archive) in a venv, a FAT boot partition, a
# read-only root and a small writable data partition. See image/README.md.
#
#   image/build.sh [--arch arm64|amd64] [--out DIR] [--test-console] [--no-xz] [--keep-tree]
#
# arm64 is the Raspberry Pi image; amd64 is its twin for the boot test
# (tests/image/), built by the same steps with linux-image-amd64 and the x86_64
# pjsua2-python wheel. --test-console (twin for the test only, never for a
# device) logs root in on the serial console and forwards the journal to it.
# Runs as root (mmdebstrap's root mode, mkfs); needs about 7 GB of scratch.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
# shellcheck source=image/progress.sh
. "$here/progress.sh"

arch=arm64
out=$repo/build/image
test_console=0
xz=1
keep_tree=0
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--test-console) test_console=1; shift ;;
	--no-xz) xz=0; shift ;;
	--keep-tree) keep_tree=1; shift ;;
	*) echo "build.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
	esac
done
case $arch in arm64 | amd64) ;; *) echo "build.sh: --arch is arm64 or amd64, not $arch" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (mmdebstrap root mode, mkfs)" >&2; exit 2; }

name=simplephone-bookworm-$arch
[ "$test_console" = 1 ] && name=$name-test
work=$out/$name.work
# remove_work: the build tree, never following a mount left in it by a build
# that was stopped (mmdebstrap mounts /proc, /sys and /dev in the root).
remove_work() {
	findmnt -rn -o TARGET | { grep -F "$work/" || true; } | sort -r | xargs -r -n 1 umount -l
	rm -rf --one-file-system "$work"
}
mkdir -p "$out"
remove_work
mkdir -p "$work"
export IMAGE_PHASE_LOG=$out/$name.phases
: >"$IMAGE_PHASE_LOG"

# Partition sizes (MiB). The boot partition holds the kernel, the initramfs and
# the Pi's firmware and device trees; the data partition the phone's SQLite.
BOOT_MIB=256
DATA_MIB=64
FIRST_SECTOR=8192 # 4 MiB, the alignment SD cards like

MIRROR=http://deb.debian.org/debian
SECURITY=http://deb.debian.org/debian-security
COMPONENTS="main non-free-firmware"

# Debian packages of the image, for both architectures.
PACKAGES=(systemd systemd-sysv udev dbus systemd-resolved systemd-timesyncd kmod iproute2
	iputils-ping openssh-server wpasupplicant ca-certificates python3 python3-venv libasound2
	initramfs-tools zstd e2fsprogs dosfstools cloud-guest-utils sudo less)
# Needed only to build the venv's C extensions (pyalsaaudio, evdev, spidev); purged after.
BUILD_PACKAGES=(gcc libc6-dev python3-dev libasound2-dev)
case $arch in
# Debian's own Pi support, as Debian's raspi images have it.
arm64) PACKAGES+=(linux-image-arm64 raspi-firmware firmware-brcm80211 wireless-regdb) ;;
amd64) PACKAGES+=(linux-image-amd64) ;;
esac
phase "source (git archive HEAD)"
commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
	echo "build.sh: the worktree has uncommitted changes; the image gets HEAD ($commit) only" >&2
fi
mkdir -p "$work/src"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$work/src"
echo "$commit" >"$work/src/.commit"
echo "simplephone $commit"

pjbuild=$work/src/image/pjproject
pj_host=""
if [ "$arch" = arm64 ] && [ -x "$pjbuild/build.sh" ]; then
	# pjproject from source (image/pjproject/build.sh): on an arm64 build host
	# in the chroot, with its build packages there; elsewhere cross-compiled by
	# the host's aarch64 toolchain against the root, which then needs only the
	# -dev packages (build-deps-target). The libraries _pjsua2 links to stay.
	deps=$pjbuild/build-deps
	if [ "$(dpkg --print-architecture)" != arm64 ]; then
		pj_host=aarch64-linux-gnu deps=$pjbuild/build-deps-target
		command -v "$pj_host-g++" >/dev/null && command -v swig >/dev/null || {
			echo "build.sh: cross-compiling pjproject needs crossbuild-essential-arm64 and swig on this host" >&2
			exit 2
		}
	fi
	while read -r package; do
		case " ${PACKAGES[*]} " in *" $package "*) ;; *) BUILD_PACKAGES+=("$package") ;; esac
	done < <(grep -v '^[[:space:]]*\(#\|$\)' "$deps")
	PACKAGES+=(libssl3 libopus0 libuuid1)
fi

if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	phase "binfmt for $arch"
	mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
		/usr/lib/systemd/systemd-binfmt /usr/lib/binfmt.d/qemu-aarch64.conf
fi

phase "rootfs (mmdebstrap bookworm $arch)"
root=$work/root
include=$(IFS=,; echo "${PACKAGES[*]},${BUILD_PACKAGES[*]}")
export IMAGE_ARCH=$arch IMAGE_SRC=$work/src IMAGE_TEST_CONSOLE=$test_console IMAGE_PJ_HOST=$pj_host
export IMAGE_BUILD_PACKAGES="${BUILD_PACKAGES[*]}"
mmdebstrap --mode=root --variant=minbase --arch="$arch" --components="$COMPONENTS" \
	--include="$include" \
	--dpkgopt=force-confdef --dpkgopt=force-confold \
	--setup-hook='for d in early "early-$IMAGE_ARCH"; do [ ! -d "$IMAGE_SRC/image/$d" ] || cp -a "$IMAGE_SRC/image/$d/." "$1/"; done' \
	--customize-hook='"$IMAGE_SRC/image/customize.sh" "$1"' \
	bookworm "$root" \
	"deb $MIRROR bookworm $COMPONENTS" \
	"deb $MIRROR bookworm-updates $COMPONENTS" \
	"deb $SECURITY bookworm-security $COMPONENTS"

phase "partitions (vfat, ext4)"
mib() { echo $((($1 + 1048575) / 1048576)); }
# The root gets what it holds plus a fifth and 64 MiB for ext4's own tables.
used=$(du -sb --exclude=./boot/firmware "$root" | cut -f1)
root_mib=$(($(mib "$used") * 6 / 5 + 64))
mkfs.vfat -C -F 32 -n SP-BOOT "$work/boot.vfat" $((BOOT_MIB * 1024)) >/dev/null
mcopy -s -i "$work/boot.vfat" "$root"/boot/firmware/* ::
find "$root/boot/firmware" -mindepth 1 -delete
mkfs.ext4 -q -L sp-root -d "$root" "$work/root.ext4" "${root_mib}M"
uid=$(stat -c %u "$root/var/lib/simplephone")
gid=$(stat -c %g "$root/var/lib/simplephone")
mkfs.ext4 -q -L sp-data -E "root_owner=$uid:$gid" "$work/data.ext4" "${DATA_MIB}M"

phase "image ($name.img)"
img=$out/$name.img
rm -f "$img" "$img.xz"
boot_start=$FIRST_SECTOR
root_start=$((boot_start + BOOT_MIB * 2048))
data_start=$((root_start + root_mib * 2048))
total=$((data_start + DATA_MIB * 2048))
truncate -s $((total * 512)) "$img"
sfdisk -q "$img" <<PARTS
label: dos
unit: sectors
start=$boot_start, size=$((BOOT_MIB * 2048)), type=c, bootable
start=$root_start, size=$((root_mib * 2048)), type=83
start=$data_start, size=$((DATA_MIB * 2048)), type=83
PARTS
for part in boot.vfat:$boot_start root.ext4:$root_start data.ext4:$data_start; do
	dd if="$work/${part%%:*}" of="$img" bs=512 seek="${part##*:}" conv=notrunc,sparse status=none
done
echo "$commit" >"$out/$name.commit"

if [ "$xz" = 1 ]; then
	phase "compress ($name.img.xz)"
	xz -T0 -6 -k -f "$img"
fi

if [ "$keep_tree" = 1 ]; then
	rm -f "$work"/*.vfat "$work"/*.ext4
else
	remove_work
fi
phase_end
echo
echo "== $name: phases"
cat "$IMAGE_PHASE_LOG"
ls -l "$img"* | sed 's/^/   /'
printf '== total %s (mm:ss)\n' "$(_clock)"
