"""Encrypting documents for SvarUt (``kryptert: true``, required for
``sikkerhetsniva: HOYESTE``) as CMS EnvelopedData for SvarUt's certificate.

>>> import httpx2
>>> from svarut.kryptering import Kryptering, hent_sertifikat, sertifikat_url
>>> with httpx2.Client() as http:  # doctest: +SKIP
...     kryptering = Kryptering(hent_sertifikat(http, sertifikat_url("test")))
>>> kryptering.encrypt_file(open("vedtak.pdf", "rb"), open("vedtak.pdf.cms", "wb"))  # doctest: +SKIP

RSAES-OAEP (SHA-256, MGF1-SHA-256) key transport by default,
``key_transport="pkcs1v15"`` for integrations that need RSA PKCS#1 v1.5; the
content is AES-256-CBC. Everything streams: see
:mod:`svarut.runtime.kryptering` for the details.
"""

from svarut.runtime.kryptering import *  # noqa: F403 (the public face of the runtime module)
from svarut.runtime.kryptering import __all__ as __all__
