"""Measuring controllers: evaluation rollouts, gait metrics, walking to targets and plots."""
