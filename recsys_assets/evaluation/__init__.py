"""Offline evaluation: ranking metrics, baseline recommenders and evaluation protocols."""
