//! Stable-Baselines3 model files.
