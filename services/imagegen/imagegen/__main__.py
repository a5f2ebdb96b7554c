from imagegen.app import main

main()
