import asyncio
import base64
import time

from shop_user.domain import passwords


def test_hash_is_encoded_scrypt_with_its_parameters_and_a_16_byte_salt():
    scheme, n, r, p, salt, digest = passwords.hash_password("correct horse").split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == passwords.KEY_BYTES


def test_each_hash_has_its_own_salt():
    assert passwords.hash_password("same password") != passwords.hash_password("same password")


def test_verify_accepts_the_password_and_rejects_others():
    encoded = passwords.hash_password("correct horse")
    assert passwords.verify_password("correct horse", encoded)
    assert not passwords.verify_password("correct horsf", encoded)
    assert not passwords.verify_password("", encoded)


def test_verify_rejects_malformed_encodings():
    encoded = passwords.hash_password("correct horse")
    for bad in [
        "",
        "plain",
        encoded.replace("scrypt", "md5"),
        encoded[:-8] + "!!!!!!!!",
        "scrypt$x$8$1$AA==$AA==",
    ]:
        assert not passwords.verify_password("correct horse", bad)


def test_the_password_does_not_appear_in_its_hash():
    assert "hunter2hunter2" not in passwords.hash_password("hunter2hunter2")


async def test_async_hashing_leaves_the_event_loop_free():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    encoded = await passwords.hash_password_async("correct horse")
    elapsed = time.perf_counter() - started
    task.cancel()
    assert await passwords.verify_password_async("correct horse", encoded)
    # A blocked loop would tick once; a free one ticks all through the hash.
    assert ticks >= max(2, int(elapsed / 0.005) // 3)


async def test_hash_passwords_keeps_order():
    hashes = await passwords.hash_passwords(["first password", "second password", "third pw!"])
    assert [
        passwords.verify_password(p, h)
        for p, h in zip(["first password", "second password", "third pw!"], hashes, strict=True)
    ] == [True] * 3
