"""snn-deploy: compile spiking neural networks (NIR) for neuromorphic hardware."""

__version__ = "0.1.0"
