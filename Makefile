.PHONY: run test lint bench bench-screen bench-memory bench-intake serve soak
run:   ## the cockpit with the demo city and feed
	scripts/run
test:  ## install and run every test
	scripts/test
lint:
	.venv/bin/ruff check .
	.venv/bin/mypy
serve: ## only the web server (needs REDIS_URL)
	.venv/bin/citybrain web
bench: ## ingest benchmark
	.venv/bin/python bench/ingest.py --repeat 3
bench-screen: ## XADD-to-screen latency, bytes and CPU per tick
	.venv/bin/python bench/screen.py
bench-intake: ## HTTP intake's accepted events/s against direct XADD
	.venv/bin/python bench/intake.py
bench-memory: ## worker RSS and Redis memory over two million events
	.venv/bin/python bench/memory.py
soak:  ## the wall under `citybrain run` at 50 events/s for an hour (tour, a web, a push and a Redis restart); /tmp/soak
	.venv/bin/python bench/soak.py --duration 3600 --rate 50 --out /tmp/soak $(SOAK_ARGS)
