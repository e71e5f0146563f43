"""`contactpulse demo` and `contactpulse simulate` (see `run`)."""

from stream.demo.run import run_demo
from stream.demo.traffic import simulate

__all__ = ["run_demo", "simulate"]
