# Phases with elapsed times, shared by build.sh and customize.sh (sourced).
# IMAGE_BUILD_STARTED (epoch seconds) is exported by build.sh, so the hook that
# mmdebstrap runs counts from the same start.
: "${IMAGE_BUILD_STARTED:=$(date +%s)}"
export IMAGE_BUILD_STARTED
_phase_name=""
_phase_started=0

_clock() {
	local s=$(($(date +%s) - IMAGE_BUILD_STARTED))
	printf '%02d:%02d' $((s / 60)) $((s % 60))
}

# phase NAME: end the running phase (printing its time) and start NAME.
phase() {
	phase_end
	_phase_name=$1
	_phase_started=$(date +%s)
	printf '\n[%s] == %s\n' "$(_clock)" "$_phase_name" >&2
}

phase_end() {
	[ -n "$_phase_name" ] || return 0
	local took=$(($(date +%s) - _phase_started))
	printf '[%s] == %s: %d s\n' "$(_clock)" "$_phase_name" "$took" >&2
	if [ -n "${IMAGE_PHASE_LOG:-}" ]; then
		printf '%-28s %5d s\n' "$_phase_name" "$took" >>"$IMAGE_PHASE_LOG"
	fi
	_phase_name=""
}
