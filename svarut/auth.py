"""Authentication: Maskinporten tokens and the SvarUt integration credentials.

>>> from svarut import SvarUtClient
>>> from svarut.auth import Keystore, MaskinportenConfig
>>> client = SvarUtClient.for_environment(  # doctest: +SKIP
...     "test",
...     integrasjon_id="...",
...     integrasjon_passord="...",
...     maskinporten=MaskinportenConfig(
...         client_id="...",
...         keystore=Keystore.load("virksomhet.p12", password="..."),
...     ),
... )

Bring your own token (from a gateway, say) by implementing
:class:`TokenProvider` and passing ``token_provider=`` instead of
``maskinporten=``; :class:`StaticToken` is the simplest one.
"""

from svarut.runtime.auth import *  # noqa: F403 (the public face of the runtime module)
from svarut.runtime.auth import __all__ as __all__
