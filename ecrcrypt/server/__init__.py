"""``ecrcrypt.server``: an OCI Distribution (v2) registry over ecrcrypt, the worked example of embedding.

Real container clients (skopeo, docker, oras, crane) push to and pull from it while every blob and
manifest is stored encrypted exactly as the library's ECR model stores it. The HTTP application is
:mod:`ecrcrypt.server.app` (Starlette, served by uvicorn: the ``server`` extra); this package's root
imports neither, so that the command line can start the server without loading it.

Layer: faces. May import every layer below.
"""

from ecrcrypt.server.options import ENVIRONMENT_VARIABLE, ServerOptions

__all__ = ["ENVIRONMENT_VARIABLE", "ServerOptions"]
