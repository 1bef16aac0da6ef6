.PHONY: run test lint bench serve
run:   ## the cockpit with the demo city and feed
	scripts/run
test:  ## install and run every test
	scripts/test
lint:
	.venv/bin/ruff check .
serve: ## only the web server (needs REDIS_URL)
	.venv/bin/citybrain web
bench: ## ingest benchmark
	.venv/bin/python bench/ingest.py
