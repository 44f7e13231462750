"""The LanceDB store: tables, idempotent writes, search, SQL and readers for training."""

from mmfs.light_imports import package_without_init

# LanceDB imports this REST client's package for its model types; its `__init__` also builds every
# REST API's validators (0.5 s of each CLI start). Local and object-store stores never call them.
package_without_init("lance_namespace_urllib3_client")
