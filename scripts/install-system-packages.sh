#!/usr/bin/env bash
# Installs the system programs the document pipeline runs (OCR, PDF and office tools).
# As root it uses apt when something is missing; otherwise it prints the one line to run.
# Usage: scripts/install-system-packages.sh [extra Debian packages...]
set -euo pipefail

# Debian package -> a file it installs, to tell whether it is already there.
declare -A PROBE=(
  [tesseract-ocr]=/usr/bin/tesseract
  [tesseract-ocr-eng]=/usr/share/tesseract-ocr/5/tessdata/eng.traineddata
  [tesseract-ocr-deu]=/usr/share/tesseract-ocr/5/tessdata/deu.traineddata
  [tesseract-ocr-osd]=/usr/share/tesseract-ocr/5/tessdata/osd.traineddata
  # French is installed but not used by default (TESSERACT_LANGUAGE=eng+deu); bench/extraction.py
  # OCRs its French scans with eng+deu+fra.
  [tesseract-ocr-fra]=/usr/share/tesseract-ocr/5/tessdata/fra.traineddata
  [ghostscript]=/usr/bin/gs
  [qpdf]=/usr/bin/qpdf
  [poppler-utils]=/usr/bin/pdftotext
  [unpaper]=/usr/bin/unpaper
  [pngquant]=/usr/bin/pngquant
  [libreoffice-writer-nogui]=/usr/bin/soffice
  [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
  [libmagic1]=/usr/share/misc/magic.mgc
  [zip]=/usr/bin/zip
)

missing=()
for package in "${!PROBE[@]}"; do
  [ -e "${PROBE[$package]}" ] || missing+=("$package")
done
# manage.py backup/restore on PostgreSQL run pg_dump, pg_restore and psql. /usr/bin/pg_dump
# alone is only Debian's wrapper; the programs lie under /usr/lib/postgresql/<version>/bin.
compgen -G "/usr/lib/postgresql/*/bin/pg_dump" >/dev/null || missing+=(postgresql-client)
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The deployment tests start their own nginx; Debian's install starts one on port 80.
  if [[ " ${missing[*]} " == *" nginx "* ]]; then
    service nginx stop >/dev/null 2>&1 || true
  fi
  # The SFTP tests start their own sshd on a free port with throwaway keys; a system one on
  # port 22, which Debian's install starts where services may start, is not wanted.
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    service ssh stop >/dev/null 2>&1 || true
  fi
  # The IMAP tests start their own Dovecot with a throwaway config; the system one Debian's
  # install starts would hold ports 143 and 993 and serve the machine's real accounts.
  if [[ " ${missing[*]} " == *" dovecot-imapd "* || " ${missing[*]} " == *" dovecot-core "* ]]; then
    service dovecot stop >/dev/null 2>&1 || true
  fi
else
  echo "Some system programs the pipeline needs are missing. Install them with:"
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
fi
