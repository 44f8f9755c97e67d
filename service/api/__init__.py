"""The debugger service: the FastAPI app (`create_app`), its routers, and `data-debugger serve`."""
