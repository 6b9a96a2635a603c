# The distributor image: one image for migrations, workers, the scheduler and the web app.
#
#   docker build -t distributor:local .
#   docker run --rm distributor:local                 # prints the command overview
#   docker run --rm --env-file prod.env distributor:local distributor status
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The compose health checks run `distributor health ...` and Python itself (the web app's
# /readyz): the image needs nothing else.
WORKDIR /src
COPY . .
RUN pip install . && rm -rf /src

RUN groupadd --system --gid 10001 distributor \
    && useradd --system --uid 10001 --gid distributor --create-home \
       --home-dir /home/distributor --shell /usr/sbin/nologin distributor

USER distributor
WORKDIR /home/distributor

CMD ["distributor", "--help"]
