"""LeRobot policies as diagnosis targets, one job per module, in the order a target is built.

- `presets`: the policies this tool builds (`PolicySpec`) and their shapes and config values;
- `packages`: what a policy needs installed, and the one line that says how to install it;
- `config`: lerobot's config class, `--policy.FIELD=VALUE` overrides, the config and the policy;
- `batches`: synthetic batches shaped by the config's features, and observation queues;
- `dataset`: a local LeRobotDataset's shapes, stats and batches;
- `checkpoint`: a local checkpoint folder (or, only when named, a hub id);
- `preprocessor`, `offline`: what the dataset and the checkpoint share (normalisation, no hub);
- `compiled_copy`: the compiled twin, in the ways `--compile-how` names;
- `policy`: `PolicyRequest` and `build_target`, the assembly of all the above into a `Target`.
"""
