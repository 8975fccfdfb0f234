"""The phone's sound: ALSA capture and playback, echo cancellation, volume, tones.

The contract, for the core (one object of each per phone):

- `alsa.AlsaSound(AudioConfig(capture_pcm, playback_pcm, echo=EchoConfig(...)),
  on_state=...)` — create after the pjsua2 Endpoint. Connect a call with
  `sound.capture_media.startTransmit(call_media)` and
  `call_media.startTransmit(sound.playback_media)` (both are `sound.port`). `open()` raises `AudioDeviceError`
  (naming the device) when a PCM is missing or busy; `start()` instead keeps
  retrying in the background and calls `on_state(AudioState, error)` **on the
  audio thread** (hand it to the loop with `call_soon_threadsafe`). `muted`
  sends silence instead of the microphone. `play_tone(frames)` mixes a tone
  into the speaker. `stats()` gives deadline misses, xruns, ring over/underruns,
  drift corrections, AEC on/off, CPU time and `streaming` (the card runs). The
  card runs only while something needs sound: a call (pjmedia's clock, which
  pjsua stops between calls) or a tone; 1 s after the last of them the audio
  thread reopens the PCMs unstarted and blocks, so an idle phone does no
  periodic audio work, and a call or `play_tone` starts the card again. The
  canceller's adaptation and the measured echo lag outlive the stop. `close()`
  stops the audio thread; `destroy()` then ends the port and frees the
  canceller, before `libDestroy`.
- `pjsua_sound.PjsuaSound(endpoint, PjsuaSoundConfig(...))` — the other
  backend, where pjproject was built with ALSA (the Pi image): pjsua owns the
  card and runs its own canceller (AEC3 possible). Same `open()`,
  `capture_media`, `playback_media`, `muted`; on the pip wheel `open()` raises
  `AudioDeviceError`.
- `echo.EchoCanceller(EchoConfig(algorithm="webrtc"|"speex"|"none", ...))` —
  pjmedia's canceller through ctypes; passes audio through, with a warning,
  when the symbols or its self-test fail.
- `bridge_port.BridgePort` — a Python port in pjsua's conference bridge; its
  owner ends it with `destroy()` before `libDestroy` (dropping it to the
  garbage collector while pjmedia's clock calls it crashed the process).
- `delay.DelayEstimator` — the lag from speaker to microphone, measured from
  the sound, which places the canceller's reference (used by `AlsaSound`).
- `ring.PcmRing` — the bounded SPSC ring between ALSA's clock and pjmedia's,
  with sample-level drift correction.
- `volume.Volume(mixer_device, control, step, sound)` — speaker level 0-100 on
  the ALSA mixer, and the microphone mute.
- `tones` — ring, ringback and busy tones generated as PCM frames.

Threads: the ALSA thread owns the PCMs and runs the echo canceller; pjmedia's
clock thread runs the port's callbacks. They meet only in the two rings.
"""
