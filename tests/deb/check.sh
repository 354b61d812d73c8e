#!/usr/bin/env bash
# Builds the Debian package and checks it on this machine (as root): its file list and conffiles,
# `dpkg -i`, the system user, `systemd-analyze verify` on the installed unit, `check-config` run as
# the service user on the installed template (exit 1 naming every key to fill), then `dpkg -P`
# leaving nothing behind. A trap purges the package whatever happens, so a failed run leaves
# nothing installed. Run from anywhere: `bash tests/deb/check.sh` (CI does, from .ci/run).
# Set DEB_SKIP_BUILD=1 to reuse the build as it is; DEB_PROFILE=dev packages the debug build (a quick
# local check: cargo-deb maps the assets' target/release/ to the profile's folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
profile="${DEB_PROFILE:-release}"

fail() { echo "deb check: FAIL: $*" >&2; exit 1; }
# "installed", "config-files", "half-installed"...; empty or "not-installed" when absent.
dpkg_status() { dpkg-query -W -f='${db:Status-Status}' auth0-client 2>/dev/null || true; }
present() { local s; s=$(dpkg_status); [ -n "$s" ] && [ "$s" != not-installed ]; }
cleanup() {
    rm -f /etc/auth0-client/auth0-client.toml.orig
    if present; then
        dpkg -P auth0-client >/dev/null 2>&1 || true
    fi
}

[ "$(id -u)" = 0 ] || fail "run as root (dpkg -i)"
if present; then
    fail "auth0-client is already on this machine ($(dpkg_status); dpkg -P it first): this check would purge it"
fi
trap cleanup EXIT

if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --version 3.8.0 --locked
fi
if [ "${DEB_SKIP_BUILD:-}" != 1 ]; then
    # The binary, the plugins and (build.rs) the man pages and completions, once.
    cargo build --profile "$profile" -p auth0-client -p audit-log -p email-domain-connection -p groups-to-permissions
fi
rm -f "$target_dir"/debian/auth0-client_*.deb
cargo deb -p auth0-client --no-build --profile "$profile"
deb=$(ls "$target_dir"/debian/auth0-client_*.deb)
echo "package: $deb ($(du -k "$deb" | cut -f1) KiB)"

# The file list.
files=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for want in \
    /usr/bin/auth0-client \
    /usr/lib/systemd/system/auth0-client.service \
    /etc/auth0-client/auth0-client.toml \
    /etc/auth0-client/auth0-client.env \
    /usr/lib/auth0-client/plugins/libaudit_log.so \
    /usr/lib/auth0-client/plugins/libemail_domain_connection.so \
    /usr/lib/auth0-client/plugins/libgroups_to_permissions.so \
    /usr/share/man/man1/auth0-client.1 \
    /usr/share/man/man1/auth0-client-check-config.1 \
    /usr/share/man/man1/auth0-client-serve.1 \
    /usr/share/bash-completion/completions/auth0-client \
    /usr/share/zsh/vendor-completions/_auth0-client \
    /usr/share/fish/vendor_completions.d/auth0-client.fish; do
    # Man pages may be compressed.
    grep -qx -e "$want" -e "$want.gz" <<<"$files" || fail "the package lacks $want; it holds:
$files"
done
! grep -q '/usr/share/man/man1/auth0-client-help' <<<"$files" || fail "a man page for the help subcommand"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[ "$(sort <<<"$conffiles")" = "$(printf '%s\n' /etc/auth0-client/auth0-client.env /etc/auth0-client/auth0-client.toml)" ] ||
    fail "conffiles are: $conffiles"
control=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
for script in postinst prerm postrm; do
    grep -qx "./$script" <<<"$control" || fail "no $script in the package"
done

# Install.
dpkg -i "$deb"
id auth0-client || fail "no auth0-client user after dpkg -i"
[ "$(stat -c '%a %U:%G' /etc/auth0-client/auth0-client.toml)" = "640 root:auth0-client" ] ||
    fail "/etc/auth0-client/auth0-client.toml is $(stat -c '%a %U:%G' /etc/auth0-client/auth0-client.toml)"
[ "$(stat -c '%a %U:%G' /etc/auth0-client/auth0-client.env)" = "640 root:auth0-client" ] ||
    fail "/etc/auth0-client/auth0-client.env is $(stat -c '%a %U:%G' /etc/auth0-client/auth0-client.env)"
systemd-analyze verify /usr/lib/systemd/system/auth0-client.service
/usr/bin/auth0-client --version
man -w auth0-client >/dev/null 2>&1 || [ -e /usr/share/man/man1/auth0-client.1.gz ] || [ -e /usr/share/man/man1/auth0-client.1 ] ||
    fail "no man page installed"

# The template, read as the service reads it: exit 1, every key to fill named.
set +e
out=$(setpriv --reuid=auth0-client --regid=auth0-client --init-groups \
    /usr/bin/auth0-client check-config --config /etc/auth0-client/auth0-client.toml 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" = 1 ] || fail "check-config on the template exited $rc, not 1"
for key in clients.web.auth0Url clients.web.clientId clients.web.clientSecret clients.web.redirectUrl; do
    grep -q "$key" <<<"$out" || fail "check-config does not name $key"
done
# Filled, it passes (still as the service user; the filled copy is restored before the purge).
cp -p /etc/auth0-client/auth0-client.toml /etc/auth0-client/auth0-client.toml.orig
sed -i -e 's|"FILL-ME: https://<tenant>.<region>.auth0.com/"|"https://tenant.eu.auth0.com/"|' \
    -e 's|"FILL-ME: client id"|"web-id"|' -e 's|"FILL-ME: client secret"|"web-secret"|' \
    -e 's|"FILL-ME: https://<this host>/web-login/callback"|"https://app.example.com/web-login/callback"|' \
    /etc/auth0-client/auth0-client.toml
setpriv --reuid=auth0-client --regid=auth0-client --init-groups \
    /usr/bin/auth0-client check-config --config /etc/auth0-client/auth0-client.toml >/dev/null ||
    fail "check-config on the filled template failed"
mv /etc/auth0-client/auth0-client.toml.orig /etc/auth0-client/auth0-client.toml
# The plugins load.
/usr/bin/auth0-client plugin-info /usr/lib/auth0-client/plugins/libemail_domain_connection.so

# Remove, then purge: nothing left.
dpkg -r auth0-client
[ ! -e /usr/bin/auth0-client ] || fail "/usr/bin/auth0-client left after dpkg -r"
[ -e /etc/auth0-client/auth0-client.toml ] || fail "dpkg -r removed the config (a conffile stays until purge)"
dpkg -P auth0-client
for gone in /usr/bin/auth0-client /usr/lib/systemd/system/auth0-client.service /etc/auth0-client \
    /usr/lib/auth0-client /var/lib/auth0-client; do
    [ ! -e "$gone" ] || fail "$gone left after dpkg -P"
done
! id auth0-client >/dev/null 2>&1 || fail "the auth0-client user is left after dpkg -P"
echo "deb check: OK"
