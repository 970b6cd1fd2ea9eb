"""LTX-2: one transformer that denoises video and audio latents together, so the MP4 gets sound.

Stock path: `LTX2Pipeline` (t2v) and `LTX2ImageToVideoPipeline` (i2v) sharing one set of modules.

Engine path (`prepare` / `forward` / `decode`): the same components and maths with the step loop
outside. LTX-2 carries two latents per job, video tokens [1, Sv, Dv] and audio tokens [1, Sa, Da],
each stepped by its own copy of the scheduler (as the stock pipeline does). The engine steps ONE
tensor per job, so `JobState.latents` is the *packed* form: both token grids flattened and
concatenated, `[1, Sv*Dv + Sa*Da]` (video first), and `forward` returns each job's guided velocity
packed the same way. `JobState.scheduler` is a `PackedScheduler` that splits a packed tensor,
steps each half with its own scheduler and packs the result again; for i2v it also keeps the
conditioned first-frame tokens fixed, as the stock pipeline steps only frames 1.. .

Guidance: CFG (separate video and audio scales), guidance rescale, spatio-temporal guidance (STG)
and modality-isolation guidance are all supported in the engine. CFG runs as one transformer call
([uncond of every job, cond of every job], per-sample timesteps); STG and modality isolation are
whole-batch switches of the transformer (perturbed blocks, cross-modal attention off), so each
adds one more batched call over the jobs' cond inputs. The video CFG scale is the job's; every
other knob comes from `spec.options` (`audio_guidance_scale`, `guidance_rescale`, `stg_scale` +
`stg_blocks`, `modality_scale`, their `audio_*` twins, `use_cross_timestep`). Jobs share a forward
when family, latent video grid, audio length and the guidance *switches* (which passes run) match;
their scales may differ.

Not supported: prompt enhancement, the LTX-2.5 `duration_head` (num_frames is always given), step
caches, `noise_scale` re-noising, other samplers than the pipeline's own.

Frame rule: the LTX-2 VAE compresses time by `r` (8 for the real model), so clips have `r*k + 1`
frames; a job's `num_frames` is rounded to that grid (`options.frame_rule`: "up", the default, or
"down"; "up" falls back to "down" past `max_native_frames`). Sizes must be multiples of 32
(`size_multiple: 32` in the registry).

Modules: `guidance` (the knobs and the formula), `packing` (the packed tensor and its scheduler
pair), `inputs` (what a job becomes at admission), `decode` (latents to frames and sound),
`backend` (the `Backend`), `tiny` (random-weight components). This package imports nothing.
"""
