"""RL runner glue: Hydra config handling and the rl_games adapter (no task or physics logic)."""
