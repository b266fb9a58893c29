# Roost in a container: Debian slim with Python, run as the unprivileged user "roost".
#   docker build -t roost .
#   docker run -d --name roost -p 143:143 -p 993:993 -p 110:110 -p 995:995 \
#       -v roost-data:/var/lib/roost -v /srv/roost/etc:/etc/roost roost
#   docker exec -it roost roost user add alice
# /etc/roost holds roost.toml and tls/fullchain.pem + tls/privkey.pem (readable by uid
# 10143). Ports below 1024 bind without root: Docker sets
# net.ipv4.ip_unprivileged_port_start=0 in containers (Docker 20.10 and later).

FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim-bookworm
RUN groupadd --system --gid 10143 roost \
 && useradd --system --uid 10143 --gid roost --home-dir /var/lib/roost \
        --shell /usr/sbin/nologin roost \
 && install -d -o roost -g roost -m 0700 /var/lib/roost \
 && install -d -o root -g roost -m 0750 /etc/roost /etc/roost/tls
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --chown=root:roost --chmod=0640 contrib/docker/roost.toml /etc/roost/roost.toml
ENV ROOST_CONFIG=/etc/roost/roost.toml PYTHONUNBUFFERED=1
USER roost
WORKDIR /var/lib/roost
VOLUME ["/var/lib/roost", "/etc/roost"]
# IMAP and POP3; LMTP (24) and submission (587, 465) once enabled in roost.toml.
EXPOSE 143 993 110 995
# Healthy when the IMAP listener greets ("* OK"): the process is up and serving.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import socket,sys; s=socket.create_connection(('127.0.0.1', 143), 4); s.settimeout(4); sys.exit(0 if s.recv(64).startswith(b'* OK') else 1)"]
STOPSIGNAL SIGTERM
CMD ["roost", "serve"]
