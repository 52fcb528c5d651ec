"""The shop user service: customer accounts over gRPC (shop.user.v1.UserService).

domain/         users, their validation rules and password hashing; no gRPC, no SQL
service_layer/  use cases over a unit of work
adapters/       SQLAlchemy tables and the repository
entrypoints/    the gRPC servicer: proto <-> domain
bootstrap.py    builds everything and serves; ``python -m shop_user`` runs it
"""
