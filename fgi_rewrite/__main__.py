from fgi_rewrite.cli import main

main()
