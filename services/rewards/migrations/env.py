from minqing_kernel.migrations import run_migrations

run_migrations()
