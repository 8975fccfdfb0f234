#!/usr/bin/env bash
# mmdebstrap's customize hook (build.sh): turns the installed Debian in $1 into
# the phone's root. Runs on the build host with /proc, /sys and /dev mounted in
# $1; commands for the image run through chroot (under qemu-user for arm64).
# IMAGE_ARCH, IMAGE_SRC (the git archive), IMAGE_TEST_CONSOLE,
# IMAGE_BUILD_PACKAGES and IMAGE_PJ_HOST (the cross target for pjproject, or
# empty to build it in the chroot) come from build.sh.
set -euo pipefail
root=$1
# shellcheck source=image/progress.sh
. "$IMAGE_SRC/image/progress.sh"
in_root() { chroot "$root" "$@"; }

# pip and apt in the chroot resolve names and trust certificates as the build
# host does (a proxy's CA, say); the image's own resolv.conf comes back at the end.
resolv=$(readlink "$root/etc/resolv.conf" || true)
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/tmp/build-host-ca.crt"
pip_install() {
	# A clean environment: the build host's certificate variables name its own
	# files, and requests lets them win over --cert.
	local ca=/tmp/build-host-ca.crt
	in_root env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
		${no_proxy:+no_proxy=$no_proxy} PIP_CERT=$ca REQUESTS_CA_BUNDLE=$ca SSL_CERT_FILE=$ca \
		/opt/simplephone/bin/pip install --no-cache-dir --quiet "$@"
}

phase "overlay and service user"
cp -a "$IMAGE_SRC/image/rootfs/." "$root/"
in_root groupadd --system --force gpio
in_root groupadd --system --force i2c
in_root groupadd --system --force spi
in_root useradd --system --home-dir /var/lib/simplephone --no-create-home \
	--shell /usr/sbin/nologin --groups input,gpio,i2c,spi,audio simplephone
# admin: SSH keys from the boot partition (phone first-boot), no password, sudo.
in_root useradd --create-home --shell /bin/bash --groups adm,systemd-journal,sudo admin
install -d -m 0755 -o root -g root "$root/etc/simplephone"
# The data partition's mount point (its own root directory is chowned in build.sh).
install -d -m 0750 "$root/var/lib/simplephone"
in_root chown simplephone:simplephone /var/lib/simplephone
echo simplephone >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tsimplephone\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
	>"$root/etc/hosts"

phase "simplephone venv (/opt/simplephone)"
mkdir -p "$root/tmp/simplephone-src"
cp -a "$IMAGE_SRC/." "$root/tmp/simplephone-src/"
in_root python3 -m venv /opt/simplephone
pip_install --upgrade pip
# [rpi]: gpiod for the wired buttons and LEDs, spidev and rpi-lgpio for SPI panels (board/).
pip_install "/tmp/simplephone-src[rpi]"
cp "$IMAGE_SRC/.commit" "$root/opt/simplephone/COMMIT"

if [ "$IMAGE_ARCH" = arm64 ]; then
	phase "pjproject (image/pjproject/build.sh)"
	if [ -n "$IMAGE_PJ_HOST" ]; then
		# Cross-compiled on the build host against the root (build.sh chose it).
		nice "$IMAGE_SRC/image/pjproject/build.sh" --venv /opt/simplephone \
			--host "$IMAGE_PJ_HOST" --sysroot "$root" ${PJPROJECT_SRC:+--src "$PJPROJECT_SRC"}
	elif [ -x "$root/tmp/simplephone-src/image/pjproject/build.sh" ]; then
		# PJPROJECT_SRC: a local copy of the source where the network is closed.
		src=()
		if [ -n "${PJPROJECT_SRC:-}" ]; then
			cp -a "$PJPROJECT_SRC" "$root/tmp/pjproject-src"
			src=(--src /tmp/pjproject-src)
		fi
		in_root env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
			/tmp/simplephone-src/image/pjproject/build.sh --venv /opt/simplephone "${src[@]}"
		rm -rf "$root/tmp/pjproject-src"
	else
		echo "customize: image/pjproject/build.sh is not in this commit: no pjsua2 in the venv" >&2
	fi
fi

phase "purge build packages"
# shellcheck disable=SC2086 # a list of package names
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $IMAGE_BUILD_PACKAGES >/dev/null
in_root env DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null

phase "boot files"
case $IMAGE_ARCH in
arm64)
	# raspi-firmware's kernel hook copied the kernel, initramfs, device trees
	# and firmware into /boot/firmware; the root is found by label.
	sed -i 's/^#\?ROOTPART=.*/ROOTPART=LABEL=sp-root/' "$root/etc/default/raspi-firmware"
	sed -i 's/ root=[^ ]*/ root=LABEL=sp-root/; s/ rw / ro /' "$root/boot/firmware/cmdline.txt"
	;;
amd64)
	# The twin's "firmware" is qemu's direct kernel boot: the test reads the
	# kernel, the initramfs and the command line from the boot partition.
	install -d "$root/boot/firmware"
	cp "$root"/boot/vmlinuz-* "$root/boot/firmware/vmlinuz"
	cp "$root"/boot/initrd.img-* "$root/boot/firmware/initrd.img"
	echo "console=ttyS0,115200 root=LABEL=sp-root ro rootwait net.ifnames=0" \
		>"$root/boot/firmware/cmdline.txt"
	;;
esac

phase "units and clean-up"
in_root systemctl enable simplephone-first-boot.service simplephone.service \
	systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
# sshd's host keys are made on the device by the first boot that brings
# ssh_authorized_keys, never shipped alike in every image.
rm -f "$root"/etc/ssh/ssh_host_*
if [ "$IMAGE_TEST_CONSOLE" = 1 ]; then
	# Test twin only: root on the serial console, the journal forwarded to it.
	install -d "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
	printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %%I $TERM\n' \
		>"$root/etc/systemd/system/serial-getty@ttyS0.service.d/test-autologin.conf"
	printf '[Journal]\nForwardToConsole=yes\nTTYPath=/dev/ttyS0\nMaxLevelConsole=info\n' \
		>"$root/etc/systemd/journald.conf.d/test-console.conf"
fi
rm -rf "$root/tmp/simplephone-src" "$root/tmp/build-host-ca.crt" "$root"/var/lib/apt/lists/* \
	"$root"/var/cache/apt/*.bin
rm -f "$root/etc/resolv.conf"
if [ -n "$resolv" ]; then ln -s "$resolv" "$root/etc/resolv.conf"; else : >"$root/etc/resolv.conf"; fi
in_root apt-get clean
phase_end
