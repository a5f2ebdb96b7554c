"""Provider simulator: Gemini, OpenAI, Replicate and Cloudinary over their real HTTP protocols, for the SDKs.

See `app.py` for the layout, `faults.py` for the knobs, `server.py` / `fixtures.py` for running it.
"""

from tests.simulator.app import Simulator, create_app
from tests.simulator.server import BaseUrls, RunningSimulator, run_simulator

__all__ = ["BaseUrls", "RunningSimulator", "Simulator", "create_app", "run_simulator"]
