"""Echo cancellation benchmark: the figures issue 4 sets targets for.

What it measures (printed with the run): the in-process audio path, not yet
a call between two phones through Kamailio (the phone core wires AlsaSound
into calls later). Per configuration it runs one call-length stretch of

    far end (espeak-ng speech) -> AlsaSound -> ALSA `pulse` PCM -> virtual room
    (echo: delay, decay, gain; near-end talker; noise) -> ALSA `pulse` PCM ->
    AlsaSound with pjmedia's echo canceller -> far end

on a private PulseAudio, with the near-end talker in two stretches of double
talk, and reports ERLE after convergence, the time to 20 dB, near-end
attenuation and the share of near-end windows cut by more than 10 dB in
double talk, deadline misses, xruns, ring over/underruns and drift
corrections, and the CPU share of the audio path (ALSA thread + pjmedia port
callbacks, thread CPU time over wall time).

    python bench/aec.py [--seconds 60] [--config webrtc-moderate ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from board.room import EchoPath, speech  # noqa: E402
from phone.audio.echo import Aggressiveness, EchoAlgorithm, EchoConfig  # noqa: E402
from tests.audio.rig import analyse, run_rig  # noqa: E402
from tests.peers.pulseaudio import PulseAudioServer, available, client_env  # noqa: E402

RATE = 16000
CONFIGS = {
    "none": EchoConfig(EchoAlgorithm.NONE),
    "webrtc-conservative": EchoConfig(
        EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.CONSERVATIVE
    ),
    "webrtc-moderate": EchoConfig(EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.MODERATE),
    "webrtc-aggressive": EchoConfig(EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.AGGRESSIVE),
    "webrtc-moderate-ns": EchoConfig(
        EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.MODERATE, noise_suppressor=True
    ),
    "speex": EchoConfig(EchoAlgorithm.SPEEX, tail_ms=200),
}
FAR_TEXT = (
    "The quick brown fox jumps over the lazy dog. Echo cancellation is measured on speech. "
    "A hardphone on a desk hears its own loudspeaker, and the far end must not."
)
NEAR_TEXT = "Another voice is speaking now, saying different words about the weather and trains."
DOUBLE_TALK_AT_S = (12.0, 40.0)


def near_track(seconds: float) -> np.ndarray:
    """Silence with the near-end talker at DOUBLE_TALK_AT_S."""
    talk = speech(NEAR_TEXT, voice="en+f3", seed=2)
    track = np.zeros(int(seconds * RATE))
    for at in DOUBLE_TALK_AT_S:
        start = int(at * RATE)
        if start < len(track):
            piece = talk[: len(track) - start]
            track[start : start + len(piece)] = piece
    return track


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{platform.node()}: {os.cpu_count()} x {cpu}, Python {platform.python_version()}, "
        f"load {load[0]:.2f} at start"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="echo cancellation benchmark")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS))
    parser.add_argument("--delay-ms", type=float, default=40.0)
    parser.add_argument("--decay-ms", type=float, default=100.0)
    parser.add_argument("--gain-db", type=float, default=-6.0)
    parser.add_argument("--noise-db", type=float, default=-90.0)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    reason = available()
    if reason is not None:
        raise SystemExit(reason)
    names = args.config or list(CONFIGS)
    sys.setswitchinterval(0.0005)
    pulse = PulseAudioServer(["spk", "mic"])
    os.environ.update(client_env(pulse))
    pulse.start()
    import pjsua2 as pj

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    path = EchoPath(args.delay_ms, args.decay_ms, args.gain_db)
    far_one = speech(FAR_TEXT, voice="en", seed=1)
    far = np.tile(far_one, int(args.seconds * RATE / len(far_one)) + 2)
    near = near_track(args.seconds + 5)
    print("measured: the in-process audio path (far end -> AlsaSound -> ALSA pulse PCMs ->")
    print("  virtual room -> AlsaSound + AEC -> far end), not a two-phone call through Kamailio")
    print(f"machine: {machine()}")
    print(
        f"room: echo {path.delay_ms:.0f} ms delay, {path.decay_ms:.0f} ms decay, "
        f"{path.gain_db:.1f} dB; noise {args.noise_db:.0f} dBFS; near-end talker at "
        f"{', '.join(f'{t:.0f} s' for t in DOUBLE_TALK_AT_S)}; {args.seconds:.0f} s per run"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="aec-bench-") as tmp:
            for name in names:
                run = run_rig(
                    pulse,
                    Path(tmp) / name,
                    CONFIGS[name],
                    far,
                    args.seconds,
                    near=near,
                    echo_path=path,
                    noise_db=args.noise_db,
                )
                fig = analyse(run)
                st = run.stats
                converge = f"{fig.converge_s:.1f} s" if fig.converge_s is not None else "never"
                print(f"\n[{name}] aec={'on' if st.aec else 'off'} ({st.aec_backend})")
                print(f"  ERLE after 2 s, single talk:   {fig.erle_db:6.1f} dB")
                print(f"  time to ERLE >= 20 dB:          {converge}")
                if fig.near_attenuation_db is not None and fig.near_cut_share is not None:
                    print(f"  near-end attenuation (double): {fig.near_attenuation_db:6.1f} dB")
                    print(f"  near-end windows cut > 10 dB:  {fig.near_cut_share:6.1%}")
                print(
                    f"  deadline misses: {st.deadline_misses} (late cycles {st.late_cycles}, "
                    f"capture overruns {st.capture_overruns}, playback underruns "
                    f"{st.playback_underruns})"
                )
                print(
                    f"  rings: capture over/under {st.capture.overruns}/{st.capture.underruns}, "
                    f"playback over/under {st.playback.overruns}/{st.playback.underruns}; "
                    f"drift corrections {st.drift_corrections} samples; realignments "
                    f"{st.realignments} (alignment {st.alignment_ms} ms)"
                )
                print(
                    f"  CPU of the audio path: {100 * st.cpu_seconds / run.wall_s:.1f} % of a core "
                    f"over {run.wall_s:.0f} s; far-end lag {fig.lag_ms:.0f} ms"
                )
    finally:
        ep.libDestroy()
        pulse.remove()


if __name__ == "__main__":
    main()
