<?php
header('Location: /env.php?from=redirect');
