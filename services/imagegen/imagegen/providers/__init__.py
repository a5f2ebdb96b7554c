"""Outbound image providers, one module each, behind the ImageProvider interface."""

from imagegen.providers.base import GeneratedImage, GenerationRequest, ImageProvider, dimensions, inspect_image
from imagegen.providers.local_generator import LocalGenerator
from imagegen.providers.replicate import ReplicateProvider

__all__ = [
    "GeneratedImage",
    "GenerationRequest",
    "ImageProvider",
    "LocalGenerator",
    "ReplicateProvider",
    "dimensions",
    "inspect_image",
]
