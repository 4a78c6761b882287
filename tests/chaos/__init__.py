"""Tests of the chaos kind."""
