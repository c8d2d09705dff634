"""The Ray layer, and the only one: sweeps on Ray Data over generator and judge actors (`actors`,
`pipeline`), iterative DPO on Ray Train (`dpo_train`, `dpo_worker`) and the Serve application
(`serving`). It holds no algorithm of its own: what it runs is in `cotgen.sweep`, `cotgen.serving`
and the core below them."""
