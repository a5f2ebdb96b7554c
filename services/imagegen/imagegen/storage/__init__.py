"""Where generated images are kept, one module per store, behind the ImageStorage interface."""

from imagegen.storage.base import ImageStorage, StoredAsset, user_folder
from imagegen.storage.cloudinary import CloudinaryStorage
from imagegen.storage.local import LocalStorage

__all__ = ["CloudinaryStorage", "ImageStorage", "LocalStorage", "StoredAsset", "user_folder"]
