import uuid

import pytest

from common.errors import UpstreamFailed
from imagegen.providers import inspect_image
from imagegen.storage import CloudinaryStorage, user_folder
from imagegen.storage.cloudinary import options_from_url

pytestmark = pytest.mark.unit


def test_a_user_folder_is_the_id_when_safe_and_a_digest_otherwise() -> None:
    assert user_folder("user_2abcDEF") == "user_2abcDEF"
    unsafe = user_folder("../../etc/passwd")
    assert unsafe.startswith("u_") and "/" not in unsafe and "." not in unsafe
    assert user_folder("a@b.c") != user_folder("a@b.d")


def test_cloudinary_url_gives_the_sdk_options_it_stands_for() -> None:
    options = options_from_url("cloudinary://key:secret@my-cloud?upload_prefix=http://127.0.0.1:9/cloudinary")
    assert options == {
        "cloud_name": "my-cloud",
        "api_key": "key",
        "api_secret": "secret",
        "upload_prefix": "http://127.0.0.1:9/cloudinary",
    }
    for bad in ("https://key:secret@cloud", "cloudinary://cloud", "cloudinary://key@cloud"):
        with pytest.raises(ValueError):
            options_from_url(bad)


def test_cloudinary_keys_put_each_user_in_a_folder_under_the_root() -> None:
    storage = CloudinaryStorage(url="cloudinary://k:s@c", root_folder="aisaas", timeout_s=1)
    image_id = uuid.uuid4()
    assert storage.key_for(user_id="user_1", image_id=image_id) == f"aisaas/user_1/{image_id}"


def test_only_whole_pictures_pass_inspection() -> None:
    with pytest.raises(UpstreamFailed):
        inspect_image(b"<html>not an image</html>")
