"""Flower's settings, read by `celery -A workers flower` started from this directory (make
flower, the compose service, the tests): the tasks page shows each refresh as the loader
call it refreshes (its argsrepr, such as `examples.loaders.user_profile(2)`) and its
result (written, deduplicated, fresh, failed, backing_off, ...)."""

tasks_columns = "name,args,state,result,received,runtime,worker"
