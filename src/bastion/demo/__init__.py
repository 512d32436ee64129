"""The demo: a synthetic credit-application data set and a LightGBM model trained on it.

`bastion demo` uses these to show the whole path (register, serve, guard, decide, explain,
monitor) without any data of the user's own. Everything here is deterministic for a seed.
"""
