"""The FastAPI example: async loaders over SQLite (aiosqlite), served by uvicorn.

    uvicorn examples.fastapi_app.main:app
    REFRESHER_LOADERS=examples.fastapi_app.loaders celery -A workers worker
"""
