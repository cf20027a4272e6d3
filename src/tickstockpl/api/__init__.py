"""The HTTP API (`tickstockpl serve`): `create_app(settings)`, auth, models (= the contract), routes by resource."""
