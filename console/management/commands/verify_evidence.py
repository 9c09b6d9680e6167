from django.core.management.base import BaseCommand, CommandParser

from console.evidence import package_verify


class Command(BaseCommand):
    help = "Re-check an evidence package (zip): every file against the SHA-256 in its manifest; exit 1 naming the file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("package", help="path of the evidence package (.zip)")

    def handle(self, *args: object, **options: object) -> None:
        check = package_verify(str(options["package"]))
        if not check.ok:
            for problem in check.problems:
                self.stderr.write(f"evidence package ALTERED: {problem}")
            raise SystemExit(1)
        manifest = check.manifest or {}
        chain = manifest.get("audit_chain", {})
        self.stdout.write(f"evidence package intact: {len(manifest.get('files', {}))} files match the manifest")
        self.stdout.write(
            f"exported by {manifest.get('exported_by')} at {manifest.get('exported_at')}; audit chain "
            f"{'intact' if chain.get('ok') else 'BROKEN'} at export, head hash {chain.get('head_hash')}"
        )
