from chat.app import main

main()
