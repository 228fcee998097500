"""Tests of export, serving and predict."""
