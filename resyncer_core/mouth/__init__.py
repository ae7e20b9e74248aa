"""Speech → mouth shapes without a learned model: the viseme rig (phones → articulation → ΔM),
used at run time for closed neutral templates, style presets and the phone-driven mouth, and by
the synthetic corpus and the evaluations as their reference."""
