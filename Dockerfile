# Production image: gunicorn serving app:create_app() as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    APP_ENV=production \
    FLASK_APP=app

WORKDIR /srv
RUN useradd --create-home --uid 10001 coupon

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY app ./app
COPY gunicorn.conf.py ./
COPY migrations ./migrations
COPY mock_services ./mock_services
RUN mkdir -p instance && chown coupon:coupon instance

USER coupon
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/ready')"
CMD ["gunicorn", "--bind", "0.0.0.0:5000", "--workers", "4", "app:create_app()"]
